# foldstack: make folds train oof stack submit [COMP=<input/ folder>] [EXP=<configs/exp/ name>] [FOLD=k]
#            [OVERRIDES="train.epochs=3 model.name=resnet18"]
COMP ?= digits
EXP ?= baseline
FOLD ?=
ROUND ?= 1
OVERRIDES ?=
LABELS ?= $(wildcard input/$(COMP)/test_labels.csv)
SUB ?= submission.csv
PYTEST_ARGS ?=

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# What every target needs first; the tests set it empty to run in a project that shares this venv.
INSTALL ?= $(STAMP)
# OVERRIDES travels as one argument: the scripts split it on spaces outside brackets and quotes, so a value like
# predict.tta=[hflip, vflip] stays whole.
ARGS := --comp $(COMP) --exp $(EXP) $(if $(strip $(OVERRIDES)),--set '$(subst ','\'',$(OVERRIDES))')

.PHONY: all plan weights export sample folds train train-folds oof stack pseudo submit score audit download bundle kaggle-push predict summary report tensorboard mlflow-ui sweep lr-find bench test test-fast clean-artifacts docs docs-serve help
.DEFAULT_GOAL := help

help:
	@echo "make all                       whole pipeline on the embedded digits sample (or COMP=<name>)"
	@echo "make folds train FOLD=0 COMP=x split, then train fold 0 only"
	@echo "make train | oof | stack | submit   all folds / OOF + test predictions (TTA) / level 2: blends + stacker, report / submission.csv"
	@echo "make train FOLD=0 GPUS=4       one fold data-parallel on 4 GPUs (torchrun)"
	@echo "make train -j4 DEVICES=\"0 1 2 3\"   folds in parallel, one per GPU"
	@echo "make score LABELS=<csv>        score submission.csv against true labels"
	@echo "make pseudo ROUND=1            pseudo-label round 1: select from the stack, retrain folds, predict, stack"
	@echo "make all COMP=x BUDGET=10m     plan (once: model, size, epochs, folds measured on this machine) + the pipeline in the budget"
	@echo "make plan COMP=x BUDGET=10m    only the plan: configs/exp/<comp>-budget-10m.yaml (BUDGET: 90s, 10m, 2h)"
	@echo "make weights [MODEL=<timm>]    pretrained weights into weights/ (the hub cache; default: the configured experiments' models)"
	@echo "make export                    every trained fold to ONNX, checked with onnxruntime (probabilities within 1e-4), images/s"
	@echo "make download COMP=<slug>      the Kaggle competition into input/<slug>/ (kaggle CLI, zips unpacked); prints what would be inferred"
	@echo "make bundle [KAGGLE_USER=u]    what the submission uses as a Kaggle dataset (wheels, fold weights, level 2) + an offline kernel"
	@echo "make kaggle-push               the latest bundle to Kaggle: datasets create|version, kernels push [BUNDLE=<folder>]"
	@echo "make predict IMAGES=<file|dir>  top-k classes of each image from the trained folds (TTA as configured) -> CSV; TOP_K=, OUT="
	@echo "make summary [ALL=1]           parameters, GFLOPs and images/s of the experiment's model (ALL=1: every experiment)"
	@echo "make report                    reports/<comp>/index.html: leaderboard of every level, a page per experiment (static, offline)"
	@echo "make tensorboard [PORT=6006]   TensorBoard on runs/<comp>/: every fold's curves, the oof/stack/pseudo CV tables"
	@echo "make mlflow-ui [PORT=5000]     the MLflow UI on the local store mlruns/ (runtime.trackers=[mlflow])"
	@echo "make sweep SWEEP=<name>        the grid or search of configs/sweep/<name>.yaml on Ray: trials, leaderboard, best N"
	@echo "make audit                     leak audit of what is on disk: OOF, pseudo, stack and teacher rows, duplicate images"
	@echo "make lr-find                   LR range test on fold 0: lr_find/<comp>/<exp>/<hash>/lr_find.png + suggested LR"
	@echo "make bench                     pipeline vs compute ceiling (train, inference), peak memory; BENCH_ARGS=--epoch"
	@echo "make bench SOURCES=1           cached reads of .npy / DICOM / channel-file / table-pixel sources against RGB JPEG"
	@echo "make test                      the whole test suite (CPU; about 17 minutes on 2 cores), the 20 slowest tests listed"
	@echo "make test-fast                 the unit tier: no test that starts a script, make, Ray, torchrun or Chromium (< 3 minutes)"
	@echo "make docs                      regenerate docs/config.md from the schema (a test fails when it is stale)"
	@echo "make docs-serve                the docs as a local site, MkDocs Material (installs the docs extra once)"

# Fresh clone: create the venv and install the pinned project on first use (re-run when pyproject.toml or constraints.txt change).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

input/digits/train.csv: | $(INSTALL)
	$(PY) scripts/00_sample.py --out input/digits

sample: input/digits/train.csv

# The sample is materialised only when it is the competition being run.
$(if $(filter digits,$(COMP)),folds: input/digits/train.csv)

folds: | $(INSTALL)
	$(PY) scripts/01_folds.py $(ARGS)

# GPUS=n: one fold on n GPUs, data-parallel under torchrun (the batch is split across them).
# DEVICES="0 1 2 3" with -j: folds in parallel, fold k on device k mod 4 (CUDA_VISIBLE_DEVICES).
GPUS ?=
DEVICES ?=
TRAIN_PY := $(if $(GPUS),$(PY) -m torch.distributed.run --standalone --nproc_per_node=$(GPUS),$(PY))

train: folds
ifeq ($(strip $(DEVICES)),)
	$(TRAIN_PY) scripts/02_train.py $(ARGS) $(if $(FOLD),--fold $(FOLD))
else
	$(MAKE) --no-print-directory train-folds FOLD_IDS="$$($(PY) scripts/02_train.py $(ARGS) --prepare)"
endif

train-folds: $(addprefix train-fold-,$(FOLD_IDS))
train-fold-%:
	CUDA_VISIBLE_DEVICES=$(word $(shell echo $$(( $* % $(words $(DEVICES)) + 1 ))),$(DEVICES)) \
	  $(TRAIN_PY) scripts/02_train.py $(ARGS) --fold $*

oof: train
	$(PY) scripts/03_predict.py $(ARGS)

stack: oof
	$(PY) scripts/05_stack.py $(ARGS)

# Pseudo-label round ROUND: select test rows from round ROUND-1's stack, train every stacked experiment on
# them, predict, stack, print the CV next to the round before (earlier rounds are built first).
pseudo: stack
	$(PY) scripts/04_pseudo.py $(ARGS) --round $(ROUND)

submit: stack
	$(PY) scripts/06_submit.py $(ARGS)

score: | $(INSTALL)
	$(PY) scripts/score.py $(ARGS) --labels $(or $(LABELS),$(error set LABELS=<csv of true labels>)) --submission $(SUB)

# A trained experiment on images outside the competition: fold models averaged, TTA as configured.
IMAGES ?=
TOP_K ?=
OUT ?=
predict: | $(INSTALL)
	$(PY) scripts/predict_images.py $(ARGS) --images $(or $(IMAGES),$(error set IMAGES=<image file or folder>)) \
	  $(if $(TOP_K),--top-k $(TOP_K)) $(if $(OUT),--out $(OUT))

# The model as configured: size, cost and speed on this machine (no training, no images).
ALL ?=
summary: | $(INSTALL)
	$(PY) scripts/summary.py $(ARGS) $(if $(ALL),--all-experiments)

# A static HTML view of everything on disk for COMP (rebuilt whole each run; the level `make submit` would submit,
# with the same EXP and OVERRIDES, is marked). Prints the index path last.
report: | $(INSTALL)
	$(PY) scripts/report.py $(ARGS)

# runtime.trackers: TensorBoard on the competition's event files (runs/<comp>/), the MLflow UI on the local store
# (mlruns/mlflow.db; a tracking server at runtime.mlflow_uri has its own UI). PORT: 6006 / 5000.
PORT ?=
tensorboard: | $(INSTALL)
	$(PY) -m tensorboard.main --logdir runs/$(COMP) --host 127.0.0.1 --port $(or $(PORT),6006)

MLFLOW_STAMP := $(VENV)/.mlflow-installed
$(MLFLOW_STAMP): $(wildcard pyproject.toml) $(wildcard constraints.txt) | $(INSTALL)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[mlflow]'
	touch $@

mlflow-ui: | $(if $(INSTALL),$(MLFLOW_STAMP))
	mkdir -p mlruns
	$(PY) -m mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port $(or $(PORT),5000)

# The trials of configs/sweep/$(SWEEP).yaml on Ray (a local one, or the cluster at SWEEP_ADDRESS / RAY_ADDRESS),
# each an experiment configs/exp/<sweep>-<hash>.yaml; a rerun resumes. Ray and Optuna (the `sweep` extra) are
# installed on first use. SWEEP_CPUS: CPUs of the local Ray (default: all).
SWEEP ?=
SWEEP_CPUS ?=
SWEEP_ADDRESS ?=
SWEEP_STAMP := $(VENV)/.sweep-installed
$(SWEEP_STAMP): $(wildcard pyproject.toml) $(wildcard constraints.txt) | $(INSTALL)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[sweep]'
	touch $@

sweep: $(if $(filter digits,$(COMP)),input/digits/train.csv) | $(if $(INSTALL),$(SWEEP_STAMP))
	SWEEP_ADDRESS=$(SWEEP_ADDRESS) $(PY) scripts/sweep.py --comp $(COMP) \
	  --sweep $(or $(SWEEP),$(error set SWEEP=<name> of configs/sweep/<name>.yaml)) $(if $(SWEEP_CPUS),--cpus $(SWEEP_CPUS))

# The official kaggle CLI (the `kaggle` extra) is installed on first use; credentials as it reads them.
KAGGLE_STAMP := $(VENV)/.kaggle-installed
$(KAGGLE_STAMP): $(wildcard pyproject.toml) | $(INSTALL)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[kaggle]'
	touch $@

download: | $(KAGGLE_STAMP)
	$(PY) scripts/download.py --comp $(COMP)

# What the submission uses (submit.source, submit.round) as bundle/<comp>/<hash>/: dataset/ (the project and its
# pinned wheels but torch/torchvision, every fold's weights, resolved configs, the stack's level 2) and kernel/
# (inference.py + notebook, internet off). KAGGLE_USER: the ids' owner (default: the credentials'); BUNDLE_ARGS:
# e.g. --competition <slug> --gpu --python-version 3.11.
KAGGLE_USER ?=
BUNDLE_ARGS ?=
bundle: | $(INSTALL)
	$(PY) scripts/bundle.py $(ARGS) $(if $(KAGGLE_USER),--kaggle-user $(KAGGLE_USER)) $(BUNDLE_ARGS)

# The latest bundle of COMP (or BUNDLE=<folder>) to Kaggle with the official CLI; PUSH_ARGS: --version, --dry-run.
BUNDLE ?=
PUSH_ARGS ?=
kaggle-push: | $(KAGGLE_STAMP)
	$(PY) scripts/kaggle_push.py --comp $(COMP) $(if $(BUNDLE),--bundle $(BUNDLE)) $(PUSH_ARGS)

# ImageNet weights through timm's hub download into weights/ (the Hugging Face cache layout, usable offline).
MODEL ?=
weights: | $(INSTALL)
	$(PY) scripts/weights.py $(ARGS) $(if $(MODEL),--model $(MODEL))

# Every trained fold of the experiment to ONNX (export/<comp>/<exp>/<key>/), checked against PyTorch with onnxruntime.
EXPORT_SIZES ?=
export: | $(INSTALL)
	$(PY) scripts/export.py $(ARGS) $(if $(EXPORT_SIZES),--sizes $(EXPORT_SIZES))

# Reads what is on disk and proves (or refutes, naming the row and artifact) that no validation row leaked.
audit: | $(INSTALL)
	$(PY) scripts/audit.py $(ARGS)

lr-find: folds
	$(PY) scripts/lr_find.py $(ARGS)

# Images/s of the real pipeline against the model's compute ceiling on this machine (a table, not a test).
# SOURCES=1: each image source (.npy, DICOM, channel files, table pixels) against RGB JPEGs through the decoded-image
# cache, on images it generates (no COMP, no folds).
BENCH_ARGS ?=
SOURCES ?=
bench: $(if $(SOURCES),| $(INSTALL),folds)
	$(if $(SOURCES),$(PY) scripts/bench_sources.py,$(PY) scripts/bench.py $(ARGS)) $(BENCH_ARGS)

# BUDGET=10m: the plan for this machine (made once) + the pipeline in the budget, in one process, with a table of
# planned against actual seconds per stage (and the score with LABELS).
BUDGET ?=
PLAN_MODELS ?=
PLAN_SIZES ?=
PLAN_ARGS := $(if $(PLAN_MODELS),--models $(PLAN_MODELS)) $(if $(PLAN_SIZES),--sizes $(PLAN_SIZES))
ifeq ($(strip $(BUDGET)),)
all: submit
	$(if $(LABELS),$(MAKE) --no-print-directory score COMP=$(COMP) EXP=$(EXP) OVERRIDES="$(OVERRIDES)")
else
all: $(if $(filter digits,$(COMP)),input/digits/train.csv) | $(INSTALL)
	$(PY) scripts/budget.py $(ARGS) --budget $(BUDGET) $(PLAN_ARGS) $(if $(LABELS),--labels $(LABELS))
endif

plan: $(if $(filter digits,$(COMP)),input/digits/train.csv) | $(INSTALL)
	$(PY) scripts/plan.py $(ARGS) --budget $(or $(BUDGET),$(error set BUDGET=<time for the whole run, e.g. 10m>)) $(PLAN_ARGS)

# The markers are put on each test by tests/conftest.py (registered in pyproject.toml).
FAST_TIER := not slow and not browser and not ray and not faults and not ddp and not onnx

# The whole suite on every core (pytest-xdist), a test module per worker: module fixtures are built once and the
# modules that start Ray, torchrun or make keep their processes to themselves. TEST_WORKERS=0: in this process.
# With workers, each test (and every process it starts) trains on one thread: the workers are the parallelism,
# and torch's threads beside them would oversubscribe the cores (measured: two tiny trainings at once 2x slower).
TEST_WORKERS ?= auto
test: | $(INSTALL)
	$(if $(filter 0,$(TEST_WORKERS)),,OMP_NUM_THREADS=1) $(PY) -m pytest -q --durations=20 \
		$(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

test-fast: | $(INSTALL)
	$(PY) -m pytest -q --durations=20 -m "$(FAST_TIER)" $(PYTEST_ARGS)

# docs/config.md from the docstrings under the schema's fields: deterministic, needs only the project install.
docs: | $(INSTALL)
	$(PY) -m foldstack.config.reference

# The docs/ pages as a site on http://127.0.0.1:8000 (mkdocs.yml); the pinned `docs` extra is installed on first use.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): pyproject.toml constraints.txt constraints-docs.txt | $(INSTALL)
	$(PY) -m pip install --quiet -c constraints.txt -c constraints-docs.txt -e '.[docs]'
	touch $@

docs-serve: docs | $(DOCS_STAMP)
	$(PY) -m mkdocs serve

clean-artifacts:
	rm -rf folds models oof stacks pseudo submissions lr_find cache audit export bundle sweeps submission.csv
