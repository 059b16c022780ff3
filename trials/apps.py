from django.apps import AppConfig


class TrialsConfig(AppConfig):
    name = "trials"
    verbose_name = "Trials: workstations, reservations, attempts"

    def ready(self) -> None:
        from trials import checks  # noqa: F401 - registers the sandbox check with `manage.py check`
