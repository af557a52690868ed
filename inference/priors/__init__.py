"""chexnet.inference.priors: patients' timelines, a study's priors, and what changed since.

* :mod:`.identity`: :class:`StudyIdentity` (patient, issuer, date, follow-up; in memory only),
  :func:`read_identity`; :class:`PatientTable` (a labels CSV's patient column, PNG datasets);
* :mod:`.timeline`: :class:`Timelines` (built once over many files), :func:`find_priors`,
  :class:`PriorSearch` / :class:`PriorMatch`;
* :mod:`.compare`: :func:`compare_predictions` -> :class:`Comparison` of :class:`FindingChange`;
* :mod:`.keys`: salted patient keys for outputs (never the ID itself).
"""
