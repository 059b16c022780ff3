import django_stubs_ext
from django.apps import AppConfig

# Django's generic classes take their type parameters at run time too (ModelAdmin[Profile],
# ModelForm[Attempt]), as the annotations mypy checks write them. Here, not in the settings: Django
# imports every app's config before any model, form or admin module, and a process that reads the
# settings alone (an SSH workstation's gate) doesn't pay for importing the admin.
django_stubs_ext.monkeypatch(include_builtins=False)


class RebenchSiteConfig(AppConfig):
    name = "rebench_site"
    verbose_name = "Site: accounts and roles"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        # The site's Celery app is imported for its effect: shared tasks sent from this process use its broker.
        from rebench_site import celery  # noqa: F401
        from rebench_site.authentication import connect_signals
        from rebench_site.time_zones import remember_zone_at_login

        connect_signals()

        user_logged_in.connect(remember_zone_at_login, dispatch_uid="rebench_site.remember_zone_at_login")
