"""The project's history wiring: one `HistoricalRecords` for every domain model.

Each history row holds who (`history_user`), when (`history_date`), what (the field values)
and why (`history_change_reason`), plus the `source` of the write and the `request_id` shared
by every row of one request. A tracked model written outside a change context raises
`ChangeReasonRequired`: there is no path that records history without a reason.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from django.db import models
from simple_history.models import HistoricalRecords

from toolkit.change_context import ChangeReasonRequired, current


class AuditFields(models.Model):
    """Columns every history table adds to simple-history's own."""

    source = models.CharField(max_length=16, db_index=True)
    request_id = models.UUIDField(db_index=True)

    class Meta:
        abstract = True


class AuditedHistoricalRecords(HistoricalRecords):
    """simple-history, but reason, user, source and request id come from the change context."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("bases", [AuditFields])
        super().__init__(**kwargs)

    def contribute_to_class(self, cls, name):
        cls._history_records = self  # lets the audit log find the tracked fields
        super().contribute_to_class(cls, name)

    def finalize(self, sender, **kwargs):
        super().finalize(sender, **kwargs)
        if sender is self.cls:
            # Refuse before the row is written: Django sends post_save after the write and
            # outside any transaction, so refusing only there would leave an unrecorded row.
            models.signals.pre_save.connect(self.pre_save, sender=sender, weak=False)
            # `Model._base_manager` is a plain manager unless a model names one: its update()
            # would write behind history's back. Ours refuses bulk writes (TrackedQuerySet).
            sender._meta.base_manager_name = "objects"
            for field in self.m2m_fields:
                name = field if isinstance(field, str) else field.name
                guard_through_rows(sender._meta.get_field(name).remote_field.through)

    def pre_save(self, instance, raw=False, **kwargs):
        # Raw saves (loaddata) need a reason too: `manage.py loaddata --reason` gives one.
        require_context(instance)

    def pre_delete(self, instance, **kwargs):
        require_context(instance)
        super().pre_delete(instance, **kwargs)

    def post_save(self, instance, created, using=None, **kwargs):
        # Saving an unchanged object records nothing: compare with the values loaded from
        # the database (TrackedModel keeps them), which costs no query.
        if kwargs.get("raw", False):
            # simple-history records nothing for raw saves; a fixture's rows are changes too.
            self.create_historical_record(instance, "+" if created else "~", using=using)
            return
        if not created and not has_unsaved_changes(instance, self):
            return
        super().post_save(instance, created, using=using, **kwargs)

    def create_historical_record(self, instance, history_type, using=None):
        context = require_context(instance)
        instance._history_user = context.actor
        instance._change_reason = context.reason
        super().create_historical_record(instance, history_type, using=using)
        if hasattr(instance, "remember_loaded_values"):
            instance.remember_loaded_values()

    def m2m_changed(self, instance, action, attr, pk_set, reverse, **kwargs):
        # Remember what the relation held before the change, for the audit log's old → new.
        if action in ("pre_add", "pre_remove", "pre_clear"):
            require_context(instance)
            field = instance._meta.get_field(attr)
            instance._m2m_before = (field.verbose_name, _related_labels(getattr(instance, attr).all()))
            _m2m_write.set(True)  # the relation's own remove/clear may delete its rows
        try:
            super().m2m_changed(instance, action, attr, pk_set, reverse, **kwargs)
        finally:
            if action.startswith("post_"):
                _m2m_write.set(False)


# True between an audited relation's pre_* and post_* m2m_changed signals: its rows are then
# being written by the relation manager (add/remove/set/clear), which history records.
_m2m_write: ContextVar[bool] = ContextVar("audited_m2m_write", default=False)


def guard_through_rows(through: type[models.Model]) -> None:
    """Refuse writes to an audited many-to-many relation's rows that bypass the relation:
    `Feature.tags.through.objects.create(...)` would change who may edit a feature with no
    history. Django sends no save or delete signals for these auto-created tables, so their
    manager itself refuses, unless the relation's own add/remove/set/clear is writing."""
    through._meta.local_managers = []  # the auto-created plain `objects`, replaced below
    through.add_to_class("objects", RelationRowManager())
    through._meta.base_manager_name = "objects"  # Model.save() inserts through the base manager


class RelationRowQuerySet(models.QuerySet):
    def _refuse_outside_relation(self) -> None:
        if not _m2m_write.get():
            owner = self.model._meta.auto_created or self.model
            raise ChangeReasonRequired(
                f"{self.model._meta.label} rows are a relation of {owner._meta.label}: change them "
                "through the relation (add, remove, set, clear) inside a change context, so that "
                "history records it."
            )

    def _insert(self, *args, **kwargs):  # create(), save() and bulk_create() all insert here
        self._refuse_outside_relation()
        return super()._insert(*args, **kwargs)

    def _update(self, *args, **kwargs):
        self._refuse_outside_relation()
        return super()._update(*args, **kwargs)

    def update(self, *args, **kwargs):
        self._refuse_outside_relation()
        return super().update(*args, **kwargs)

    def delete(self):
        # Deleting an audited object removes its relation rows without this (a cascade is
        # recorded as the object's deletion).
        self._refuse_outside_relation()
        return super().delete()


class RelationRowManager(models.Manager.from_queryset(RelationRowQuerySet)):
    pass


def require_context(instance: models.Model):
    """The change context in force, or ChangeReasonRequired: no tracked write without a reason."""
    context = current()
    if context is None:
        raise ChangeReasonRequired(
            f"{instance._meta.verbose_name} {instance.pk or '(new)'} would be written without a change "
            "reason: open toolkit.change_context.change_context(actor=..., reason=..., source=...)."
        )
    return context


def _related_labels(queryset) -> list[str]:
    return sorted(str(obj) for obj in queryset)


def _plain(value: Any) -> Any:
    """A field value as the audit log stores it (JSON)."""
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def field_changes(
    instance: models.Model,
    records: HistoricalRecords,
    history_type: str,
    *,
    known: Mapping[type[models.Model], Mapping[Any, models.Model]] | None = None,
) -> list[dict]:
    """The fields a write changed, old → new, from the values the instance was loaded with:
    no query, except to name a foreign key's old target when `known` (model → pk → row, rows
    the caller holds already) does not have it."""
    if hasattr(instance, "_m2m_before"):
        label, before = instance._m2m_before
        del instance._m2m_before
        attr = next(f.name for f in instance._meta.many_to_many if f.verbose_name == label)
        return [{"field": str(label), "old": before, "new": _related_labels(getattr(instance, attr).all())}]
    loaded = getattr(instance, "_loaded_values", None) or {}
    changes = []
    for field in records.fields_included(instance):
        if field.primary_key:
            continue
        current = getattr(instance, field.attname)
        if history_type == "+":
            old, new = None, current
        elif history_type == "-":
            old, new = current, None
        else:
            old, new = loaded.get(field.attname, current), current
            if stored_alike(field, old, new):
                continue
        if field.is_relation and history_type == "~":
            old = _related_label(field, old, known) if old else None
            new = str(getattr(instance, field.name)) if new else None
        elif field.is_relation:
            value = str(getattr(instance, field.name)) if (old or new) else None
            old, new = (None, value) if history_type == "+" else (value, None)
        changes.append({"field": str(field.verbose_name), "old": _plain(old), "new": _plain(new)})
    return changes


def _related_label(field: models.Field, pk: Any, known) -> str:
    """How the audit log names a foreign key's target: the row's str(), or its primary key if gone."""
    row = (known or {}).get(field.related_model, {}).get(pk)
    if row is None:
        row = field.related_model._base_manager.filter(pk=pk).first()
    return str(row or pk)


def stamp_history_row(sender, history_instance, **kwargs) -> None:
    """Copy source and request id from the change context onto a history row about to be
    saved (connected to simple-history's `pre_create_historical_record`)."""
    context = current()
    if context is not None and isinstance(history_instance, AuditFields):
        history_instance.source = context.source
        history_instance.request_id = context.request_id


def has_unsaved_changes(instance: models.Model, records: HistoricalRecords | None = None) -> bool:
    """Whether saving `instance` would change a tracked field (a new or unloaded one: yes)."""
    records = records or type(instance)._history_records
    loaded = getattr(instance, "_loaded_values", None)
    if loaded is None:
        return True
    return any(
        not stored_alike(field, loaded.get(field.attname), getattr(instance, field.attname))
        for field in records.fields_included(instance)
    )


def stored_alike(field: models.Field, old: Any, new: Any) -> bool:
    """Whether two values of `field` would be stored alike: a multiple CountryField loads as
    "GB,IE" but reads as a list of countries."""
    if old == new:
        return True
    try:
        return field.get_prep_value(old) == field.get_prep_value(new)
    except (TypeError, ValueError):
        return False


def kept_apart(value: Any) -> Any:
    """A loaded value kept apart from the instance's own: a JSON list or dict changed in
    place must still read as a change."""
    return copy.deepcopy(value) if isinstance(value, list | dict) else value


class TrackedQuerySet(models.QuerySet):
    """Refuses the bulk writes that would bypass history (docs/audit.md)."""

    def update(self, **kwargs):
        raise ChangeReasonRequired(
            f"QuerySet.update() on {self.model._meta.label} writes no history: save each "
            "object through its service, or use audit.bulk helpers."
        )

    def bulk_update(self, *args, **kwargs):
        raise ChangeReasonRequired(
            f"bulk_update() on {self.model._meta.label} writes no history: use audit.bulk."
        )

    def bulk_create(self, *args, **kwargs):
        raise ChangeReasonRequired(
            f"bulk_create() on {self.model._meta.label} writes no history: use audit.bulk."
        )


class TrackedModel(models.Model):
    """A domain model with full history. Remembers the values it was loaded with, so that
    saving it unchanged records nothing."""

    objects = TrackedQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_values = {
            name: kept_apart(value) for name, value in zip(field_names, values, strict=True)
        }
        return instance

    def remember_loaded_values(self) -> None:
        self._loaded_values = {
            field.attname: kept_apart(getattr(self, field.attname)) for field in self._meta.concrete_fields
        }

    def clean_fields(self, exclude=None):
        """As Django's, except that a foreign key whose row this instance holds, loaded from the
        database, is not read again to see that it exists: one query per key and row, a
        quarter of a 10k-row import's time. (A key limited by `limit_choices_to` is checked by
        its model's `clean()` on the row held: a subscription's plan is a plan; a row deleted
        meanwhile is still refused by the database's constraint.)"""
        held = _held_relations(self)
        if held:
            exclude = set(exclude or ()) | held  # a new set: full_clean's own stays as it was
        super().clean_fields(exclude=exclude)


def _held_relations(instance: models.Model) -> set[str]:
    held = set()
    for field in instance._meta.concrete_fields:
        if not field.many_to_one or not field.is_cached(instance):
            continue
        related = field.get_cached_value(instance)
        if related is None or related._state.adding:
            continue
        if getattr(related, field.target_field.attname) == getattr(instance, field.attname):
            held.add(field.name)
    return held
