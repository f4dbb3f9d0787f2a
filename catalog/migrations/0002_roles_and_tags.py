"""Create the staff roles and the starting tags (docs/permissions.md), with the object permissions the
tags hand out. A migration runs outside any change context, so the history and audit rows
are written here by hand — still with a reason."""

import uuid

from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.utils import timezone

REASON = "Initial roles and tags of Entitle (migration catalog 0002)."


def create_roles_and_tags(apps, schema_editor):
    from catalog.roles import INITIAL_TAGS, grant_role_permissions

    for app_config in apps.get_app_configs():
        # create_permissions skips an app without a models module, as a migration's app states
        # are; put back what was there (tests call this with the real registry, whose app
        # configs must keep theirs, or a later flush recreates no content types).
        models_module, app_config.models_module = getattr(app_config, "models_module", None), True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = models_module

    Group = apps.get_model("auth", "Group")
    Tag = apps.get_model("catalog", "Tag")
    HistoricalTag = apps.get_model("catalog", "HistoricalTag")
    AuditEntry = apps.get_model("audit", "AuditEntry")
    ContentType = apps.get_model("contenttypes", "ContentType")
    tag_type, _ = ContentType.objects.get_or_create(app_label="catalog", model="tag")
    request_id = uuid.uuid4()

    grant_role_permissions(apps)
    for key, role in INITIAL_TAGS.items():
        tag, created = Tag.objects.get_or_create(key=key, defaults={"name": role})
        tag.groups.add(Group.objects.get(name=role))
        if created:
            row = HistoricalTag.objects.create(
                id=tag.pk, key=tag.key, name=tag.name, history_date=timezone.now(), history_type="+",
                history_change_reason=REASON, source="shell", request_id=request_id,
            )
            AuditEntry.objects.create(
                history_date=row.history_date, source="shell", request_id=request_id, reason=REASON,
                content_type=tag_type, object_id=str(tag.pk), object_repr=tag.name, action="+",
                changes=[{"field": "key", "old": None, "new": key}, {"field": "groups", "old": [], "new": [role]}],
                history_id=row.pk,
            )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0001_initial"),
        ("audit", "0002_scheduled_changes"),
        ("segments", "0001_initial"),
        ("subscriptions", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles_and_tags, migrations.RunPython.noop)]
