from django.apps import AppConfig


class EnvironmentsConfig(AppConfig):
    name = "environments"
    verbose_name = "RE-Bench environments"

    def ready(self) -> None:
        from environments import checks  # noqa: F401 - registers the database check of the rows against the manifests
