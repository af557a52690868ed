"""Training: the CAM model, the run's settings, loaders, the loop and the run folder.

Entry points: :func:`.run_training.start_training` / :func:`.run_training.resume_training`
(what ``chexnet-train`` calls), :class:`.config.TrainConfig`, :func:`.train.train`,
:func:`.cam_model.build_model`, :class:`.run_folder.RunFolder` and
:func:`.run_folder.load_checkpoint`.
"""
