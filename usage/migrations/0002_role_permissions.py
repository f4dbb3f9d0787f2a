"""Give the staff roles their rights on top-ups and usage (catalog.roles): Support tops up,
every role sees them."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    from catalog.roles import grant_role_permissions

    for label in ("subscriptions", "usage"):
        app_config = apps.get_app_config(label)
        models_module, app_config.models_module = getattr(app_config, "models_module", None), True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = models_module
    grant_role_permissions(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("usage", "0001_initial"),
        ("subscriptions", "0006_topups"),
        ("catalog", "0006_metered_features"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
