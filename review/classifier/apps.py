"""App config: the classifier lives inside review but keeps its own tables and migrations."""

from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    name = "review.classifier"
    label = "classifier"
    verbose_name = "Review classifier"

    def ready(self) -> None:
        # A web server loads the model in the background as it starts, not in a reviewer's first
        # request (8-12 s: torch, transformers, the encoder, the first backward pass).
        from review.classifier import warm

        warm.warm_up_in_background()
