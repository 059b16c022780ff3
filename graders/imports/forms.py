"""The upload form of run imports."""

from __future__ import annotations

from typing import Any

from django import forms

from environments.models import EnvironmentConfiguration
from graders.imports.models import RunImport


class RunImportForm(forms.Form):
    file = forms.FileField(help_text="An Inspect eval log (.eval, .json), METR runs JSONL, or our own JSONL/CSV.")
    kind = forms.ChoiceField(
        choices=RunImport.Kind.choices, initial=RunImport.Kind.AUTO, label="Format", required=False
    )

    configuration = forms.ChoiceField(
        initial=EnvironmentConfiguration.FULL,
        required=False,
        help_text="The scale of runs whose row doesn't name one: full is RE-Bench's tasks (METR runs always are).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = {EnvironmentConfiguration.FULL, EnvironmentConfiguration.SMALL}
        names |= set(EnvironmentConfiguration.objects.values_list("name", flat=True).distinct())
        ordered = sorted(names, key=lambda n: (n != EnvironmentConfiguration.FULL, n))
        configuration = self.fields["configuration"]
        assert isinstance(configuration, forms.ChoiceField)
        configuration.choices = [
            (n, "full (RE-Bench scale)" if n == EnvironmentConfiguration.FULL else n) for n in ordered
        ]

    def clean_configuration(self) -> str:
        return self.cleaned_data.get("configuration") or EnvironmentConfiguration.FULL

    def clean_kind(self) -> str:
        return self.cleaned_data.get("kind") or RunImport.Kind.AUTO
