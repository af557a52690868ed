"""Training labels mined from free-text reports (the hospital CAD paper's pipeline, ``chexnet
labels-from-reports``): clauses -> edit-distance clusters -> an edited label map -> labels.csv.

Entry points: :func:`.report_files.read_reports`, step 1 :func:`.mining.mine_clusters` and
:func:`.mining.write_clusters`, step 2 :func:`.label_map.read_clause_clusters` and
:func:`.label_map.label_reports`; :mod:`.corpus` generates reports with planted findings for
tests and benchmarks. One step by mention-level assertion (``--auto``, issue 18):
:func:`.auto.auto_label` over :func:`.assertion.label_report` with :mod:`.findings` (vocabulary)
and :mod:`.cues`; :mod:`.realistic` generates English reports with planted truth.
"""
