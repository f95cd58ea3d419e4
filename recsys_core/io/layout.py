"""Every path a run reads or writes under its work folder: lake datasets, files, step records,
models and reports. No other module spells a dataset, file or folder name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# lake datasets, each partitioned by the run's ds: <work>/lake/<dataset>/ds=YYYY-MM-DD/
INPUTS = (
    "inputs"  # validated snapshots of the input tables: inputs/<table>; every later step reads them
)
VALIDATION = "validation"  # Great Expectations reports and Data Docs of the run
USER_FEATURES = "user_features"
ITEM_FEATURES = "item_features"
HOLDOUT = "holdout"  # interactions the towers never train on (the model gate's slice)
HOLDOUT_USER_FEATURES = (
    "holdout_user_features"  # the slice users' features from their training part
)
TRAINING_EXAMPLES = (
    "training_examples"  # (user row, item row, target, validation flag) the towers train on
)
MODEL_EVALUATION = "model_evaluation"
MODEL_REF = (
    "model_ref"  # which model the run trained (CANDIDATE_REF_FILE) and ranks with (MODEL_REF_FILE)
)
ITEM_EMBEDDINGS = "item_embeddings"
USER_EMBEDDINGS = "user_embeddings"
ITEM_NEIGHBORS = "item_neighbors"
CANDIDATES = "candidates"
RECOMMENDATIONS = "recommendations"
STEP_RECORDS = "_steps"  # one JSON record per step: status, seconds, rows, error
STEP_PROGRESS_SUFFIX = ".progress.json"  # beside it while the step runs: where it is

# files inside partitions and folders
PART_FILE = "part-00000.parquet"  # the one Parquet file of a partition written outside Spark
MODEL_REF_FILE = "model.json"
CANDIDATE_REF_FILE = "candidate.json"
EVALUATION_FILE = "evaluation.json"
BLESSED_FILE = "blessed.json"  # in the models folder: the blessed model's version and path
MODEL_FILE = "model.keras"
MODEL_META_FILE = "meta.json"
MODEL_VOCABULARY_FILE = "vocabulary.npz"  # softmax towers: the ids with a learned embedding
# softmax towers: Adam's moments and step count at the end of training, where a warm start resumes
MODEL_OPTIMIZER_FILE = "optimizer.npz"
MODEL_EVALUATIONS = "evaluations"  # in a model's folder: ds=<ds>.json for every run that judged it
DOCS_INDEX = (
    Path("gx") / "uncommitted" / "data_docs" / "local_site" / "index.html"
)  # in a validation folder
REPORT_FILE = "report.html"
# hex characters of a uuid4 in staging and temporary names: enough that concurrent writers of one
# folder never pick the same name
UNIQUE_SUFFIX_CHARS = 8


def input_dataset(table: str) -> str:
    """The lake dataset holding the validated snapshot of an input table."""
    return f"{INPUTS}/{table}"


def partition_name(ds: str) -> str:
    return f"ds={ds}"


@dataclass(frozen=True)
class WorkDir:
    """A work folder: the lake, the versioned models, the run reports and the evaluation outputs."""

    root: Path

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def tradeoff_plot(self) -> Path:
        """Where the README's `recsys evaluate --plot` puts the retrieval-size curve; the report embeds it."""
        return self.root / "evaluation" / "tradeoff.png"

    def step_records(self, ds: str) -> Path:
        return self.lake / STEP_RECORDS / partition_name(ds)

    def step_record(self, ds: str, step: str) -> Path:
        return self.step_records(ds) / f"{step}.json"

    def step_progress(self, ds: str, step: str) -> Path:
        """Where a running step says how far it is (recsys_core/progress.py); gone when it ends."""
        return self.step_records(ds) / f"{step}{STEP_PROGRESS_SUFFIX}"

    def report(self, ds: str) -> Path:
        return self.reports / partition_name(ds) / REPORT_FILE

    def data_docs(self, ds: str) -> Path:
        return self.lake / VALIDATION / partition_name(ds) / DOCS_INDEX

    def model_evaluation(self, version: str, ds: str) -> Path:
        return self.models / version / MODEL_EVALUATIONS / f"{partition_name(ds)}.json"
