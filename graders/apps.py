from django.apps import AppConfig


class GradersConfig(AppConfig):
    name = "graders"

    def ready(self) -> None:
        from graders import checks  # noqa: F401 - registers the system checks
        from graders.port import GradersGrading
        from trials.grading import grading_register

        grading_register(GradersGrading())
