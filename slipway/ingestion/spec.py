"""Declarative dataset schemas: a YAML/dict spec per dataset, compiled to a pandera schema.

A spec says, per column: type, required, range, regex, allowed values (with aliases), uniqueness, how to
cleanse it (trim, case, units, date formats, missing-value strategy), whether to flag outliers and whether it
holds PII; plus dataset-wide keys, cross-field rules and the date column that partitions the curated data.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pandera.pandas as pa
import pyarrow
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slipway.data.churn_schema import CATEGORICAL_FEATURES, ID_COLUMN, NUMERIC_FEATURES, RAW_COLUMNS, TARGET_COLUMN
from slipway.errors import ConfigError, DataValidationError

ColumnType = Literal["string", "integer", "number", "boolean", "date", "datetime"]

ARROW_TYPES: dict[str, pyarrow.DataType] = {
    "string": pyarrow.string(),
    "integer": pyarrow.int64(),
    "number": pyarrow.float64(),
    "boolean": pyarrow.bool_(),
    "date": pyarrow.date32(),
    "datetime": pyarrow.timestamp("us", tz="UTC"),
}
DEFAULT_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%d.%m.%Y", "%m/%d/%Y", "%Y%m%d"]
DEFAULT_DATETIME_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]


class ColumnSpec(BaseModel):
    """One column: its contract and how to cleanse it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: ColumnType = "string"
    required: bool = True  # a value must be present (after the missing-value strategy)
    min: float | None = None
    max: float | None = None
    regex: str | None = None
    allowed: list[str] | None = None
    aliases: dict[str, str] = Field(default_factory=dict)  # raw value (any case) -> canonical value
    case: Literal["lower", "upper", "title"] | None = None
    unique: bool = False
    trim: bool = True
    missing: Literal["reject", "keep", "fill"] = "reject"
    fill_value: Any = None
    fill_when: str | None = None  # pandas expression over the typed row; fill only where it holds
    date_formats: list[str] | None = None
    unit_column: str | None = None  # column holding each value's unit, e.g. "MB"
    units: dict[str, float] = Field(default_factory=dict)  # unit -> factor to the standard unit
    scale: float | None = None  # constant factor to the standard unit (e.g. cents -> dollars: 0.01)
    outlier: Literal["iqr", "robust_z"] | None = None
    pii: Literal["hash", "mask"] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if self.missing == "fill" and self.fill_value is None:
            raise ValueError(f"column {self.name}: missing=fill needs fill_value")
        if self.unit_column and not self.units:
            raise ValueError(f"column {self.name}: unit_column needs a units table")
        return self

    @property
    def arrow_type(self) -> pyarrow.DataType:
        return ARROW_TYPES[self.type]


class RuleSpec(BaseModel):
    """A cross-field rule: a pandas expression that is True for valid rows, e.g. `end >= start`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    expr: str


class DatasetSpec(BaseModel):
    """A dataset's contract; `to_pandera()` turns it into the pandera schema the validator runs."""

    model_config = ConfigDict(extra="forbid")

    name: str
    columns: list[ColumnSpec]
    keys: list[str] = Field(default_factory=list)  # de-duplication keys (first occurrence wins)
    rules: list[RuleSpec] = Field(default_factory=list)
    partition_by: str | None = None  # a date/datetime column; unset means the ingestion date

    @model_validator(mode="after")
    def _known_columns(self) -> DatasetSpec:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset {self.name}: duplicate column names")
        for ref in [*self.keys, *([self.partition_by] if self.partition_by else [])]:
            if ref not in names:
                raise ValueError(f"dataset {self.name}: {ref!r} is not a declared column")
        return self

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    def to_pandera(self) -> pa.DataFrameSchema:
        """The pandera schema of the typed (Arrow-backed) frame; uniqueness is enforced across chunks elsewhere."""
        columns: dict[str, pa.Column] = {}
        for col in self.columns:
            checks: list[pa.Check] = []
            if col.min is not None and col.max is not None:
                checks.append(pa.Check.in_range(col.min, col.max))
            elif col.min is not None:
                checks.append(pa.Check.ge(col.min))
            elif col.max is not None:
                checks.append(pa.Check.le(col.max))
            if col.allowed is not None:
                checks.append(pa.Check.isin(col.allowed))
            if col.regex is not None:
                checks.append(pa.Check.str_matches(col.regex))
            columns[col.name] = pa.Column(
                pd.ArrowDtype(col.arrow_type), checks=checks, nullable=not col.required, required=col.required
            )
        checks = [_rule_check(rule) for rule in self.rules]
        return pa.DataFrameSchema(columns, checks=checks, strict=False, name=self.name)


def _rule_check(rule: RuleSpec) -> pa.Check:
    def holds(frame: pd.DataFrame) -> pd.Series:
        result = frame.eval(rule.expr)
        # A rule over a missing value is not judged here; `required` reports the missing value itself.
        return pd.Series(result, index=frame.index).fillna(True).astype(bool)

    # pandera reports a failing check under its `error` text; the reason code is `rule:<name>`.
    return pa.Check(holds, name=f"rule:{rule.name}", error=f"rule:{rule.name}", description=rule.expr)


def churn_spec() -> DatasetSpec:
    """The churn dataset (IBM Telco columns), built from `slipway.data.churn_schema`."""
    columns: list[ColumnSpec] = []
    for name in RAW_COLUMNS:
        if name == ID_COLUMN:
            columns.append(ColumnSpec(name=name, unique=True))
        elif name == TARGET_COLUMN:
            columns.append(ColumnSpec(name=name, allowed=["No", "Yes"]))
        elif name in CATEGORICAL_FEATURES:
            columns.append(ColumnSpec(name=name, allowed=CATEGORICAL_FEATURES[name]))
        else:
            kind, lo, hi = NUMERIC_FEATURES[name]
            spec = ColumnSpec(name=name, type=kind, min=lo, max=hi)
            if name == "TotalCharges":
                # The source leaves TotalCharges blank for customers in their first month: nothing billed yet.
                spec = ColumnSpec(
                    name=name, type=kind, min=lo, max=hi, missing="fill", fill_value=0.0, fill_when="tenure == 0"
                )
            if name == "MonthlyCharges":
                spec = ColumnSpec(name=name, type=kind, min=lo, max=hi, outlier="iqr")
            columns.append(spec)
    return DatasetSpec(name="churn", columns=columns, keys=[ID_COLUMN])


_BUILTIN = {"churn": churn_spec}


@functools.lru_cache(maxsize=32)
def _load_yaml(path: str) -> DatasetSpec:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return DatasetSpec.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"dataset spec {path} is invalid: {exc}") from exc


def load_spec(dataset: str | DatasetSpec, schema_dir: str | Path | None = None) -> DatasetSpec:
    """A spec by name (built-in, or `<schema_dir>/<name>.yaml`), by YAML path, or passed through."""
    if isinstance(dataset, DatasetSpec):
        return dataset
    if dataset.endswith((".yaml", ".yml")):
        return _load_yaml(str(Path(dataset).resolve()))
    if schema_dir is not None and (Path(schema_dir) / f"{dataset}.yaml").is_file():
        return _load_yaml(str((Path(schema_dir) / f"{dataset}.yaml").resolve()))
    if dataset in _BUILTIN:
        return _BUILTIN[dataset]()
    raise DataValidationError(
        f"unsupported dataset {dataset!r}; supported: {sorted(_BUILTIN)} or a YAML spec "
        "(pass a .yaml path or set SLIPWAY_INGEST_SCHEMA_DIR)"
    )


def spec_from_dict(data: dict[str, Any]) -> DatasetSpec:
    """Validate a spec given as a dict (the YAML form)."""
    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"dataset spec is invalid: {exc}") from exc
