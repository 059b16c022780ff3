from django.apps import AppConfig


class GradersConfig(AppConfig):
    name = "graders"

    def ready(self) -> None:
        from graders import checks  # noqa: F401 - registers the system checks
