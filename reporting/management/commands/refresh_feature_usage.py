"""Recompute the dashboard's feature usage now, instead of waiting for the next beat."""

from django.core.management.base import BaseCommand

from reporting.services import BATCH_SIZE, usage_snapshot_refresh


class Command(BaseCommand):
    help = "Resolve every customer and replace the dashboard's feature usage snapshot."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args, batch_size: int, **options):
        snapshot = usage_snapshot_refresh(batch_size=batch_size)
        if snapshot is None:
            self.stdout.write(self.style.WARNING("Another refresh is running; nothing done."))
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Feature usage of {snapshot.customers} customers computed in "
                f"{snapshot.duration.total_seconds():.1f} s ({snapshot.batches} batches)."
            )
        )
