"""The value types and base model every ``params.yaml`` section model is built from."""

from __future__ import annotations

from typing import Annotated
from typing import Literal

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field


def ordered(pair: list) -> list:
    """A ``[low, high]`` pair, checked."""
    if pair[0] > pair[1]:
        raise ValueError("must be [low, high] with low <= high")
    return pair


PosInt = Annotated[int, Field(gt=0)]
Count = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Level = Annotated[float, Field(gt=0, lt=1)]  # a confidence level or a significance level
Name = Annotated[str, Field(min_length=1)]
Size3 = Annotated[list[PosInt], Field(min_length=3, max_length=3)]
Spacing3 = Annotated[list[PosFloat], Field(min_length=3, max_length=3)]
Vector3 = Annotated[list[NonNeg], Field(min_length=3, max_length=3)]
Range = Annotated[list[float], Field(min_length=2, max_length=2), AfterValidator(ordered)]
PosRange = Annotated[list[NonNeg], Field(min_length=2, max_length=2), AfterValidator(ordered)]
CountRange = Annotated[list[Count], Field(min_length=2, max_length=2), AfterValidator(ordered)]
Window = Range  # intensity window [low, high]
Stride32 = Annotated[int, Field(gt=0, multiple_of=32)]  # a YOLO input side (stride 32)
Jobs = PosInt | Literal["auto"]
Device = Name | Count | None  # null: CUDA when present, else CPU
Scalar = bool | int | float | str | None
Option = Scalar | list[Scalar] | list[list[Scalar]]  # a keyword argument of a method or trainer
Probabilities = dict[Name, Fraction]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
