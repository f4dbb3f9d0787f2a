"""Two overrides of one feature on one subscription never overlap in time, even when they are
written at the same moment: PostgreSQL refuses the second (an exclusion constraint over the
`[valid_from, valid_until)` window; an empty end reaches forever). `Override.clean()` says so
in words first; this holds when two writes race past it.

PostgreSQL only (the demo's SQLite has no exclusion constraints and serialises writes anyway).
Creating the `btree_gist` extension needs a role allowed to create extensions, once.
"""

from django.db import migrations

CONSTRAINT = "override_no_overlap"


def add_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    schema_editor.execute(
        f"ALTER TABLE subscriptions_override ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist "
        "(subscription_id WITH =, feature_id WITH =, tstzrange(valid_from, valid_until, '[)') WITH &&)"
    )


def drop_constraint(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE subscriptions_override DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0003_addon_verbose_name")]

    operations = [migrations.RunPython(add_constraint, drop_constraint)]
