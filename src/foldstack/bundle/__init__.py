"""make bundle / make kaggle-push: what a submission uses, as a Kaggle dataset plus a kernel that rebuilds it
offline (the stage: stages/bundle.py), one concept a module (import from the defining module):

- wheels:    which packages the kernel needs beyond Kaggle's image, their wheels (cached), the project's wheel
- layout:    the dataset folder's files and bundle.json, written by the stage and read by the kernel
- metadata:  Kaggle ids, dataset-metadata.json, kernel-metadata.json, the kernel script and its notebook
- kernel:    what the kernel runs once foldstack is installed: test predictions -> level 2 -> submission.csv
- inference: the kernel script's template (standard library only until it has installed foldstack)
- push:      the kaggle CLI commands of make kaggle-push"""
