from django.apps import AppConfig


class RebenchSiteConfig(AppConfig):
    name = "rebench_site"
    verbose_name = "Site: accounts and roles"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from rebench_site.authentication import connect_signals
        from rebench_site.time_zones import remember_zone_at_login

        connect_signals()

        user_logged_in.connect(remember_zone_at_login, dispatch_uid="rebench_site.remember_zone_at_login")
