import atexit

from django.apps import AppConfig


class ChecksConfig(AppConfig):
    name = "checks"
    verbose_name = "Entitlement checks"

    def ready(self) -> None:
        """Wire the engine into this process: its own revision bumps reach the listener's view
        at once, a customer's bump drops the snapshot memory holds of it, and counts not yet
        sent go to Redis when the process exits. (The listener thread starts on the first
        check: `checks.listener.Listener.ensure`.)"""
        from checks import counters, listener, snapshots
        from toolkit import revisions

        revisions.observe(listener.known.observe)
        listener.known.on_customer_bump = snapshots.forget_older
        atexit.register(counters.flush_at_exit)
