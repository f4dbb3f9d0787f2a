"""The admin's import and export: a preview, then a confirmation with a reason that applies
every row or none."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from import_export import forms as import_export_forms
from import_export.admin import ImportExportMixin
from import_export.tmp_storages import CacheStorage
from unfold.contrib.import_export.forms import ImportForm, SelectableFieldsExportForm

from audit.admin_base import REASON_FIELD, AuditedModelForm, reason_field
from audit.imports.files import FORMATS, read_dataset, run_import
from audit.imports.resources import ImportResult


class ConfirmImportForm(import_export_forms.ConfirmImportForm):
    """Confirming a preview: the fingerprint of what it showed, and why."""

    preview_digest = forms.CharField(widget=forms.HiddenInput())
    change_reason = reason_field()

    clean_change_reason = AuditedModelForm.clean_change_reason


class AuditedImportExportMixin(ImportExportMixin):
    """Import and export for an audited model admin: put it before `AuditedModelAdmin` and
    set `resource_classes` to `ServiceResource`s. Imports show a preview and apply only on
    confirmation with a reason; exports follow the changelist's filters and search."""

    formats = FORMATS
    import_form_class = ImportForm
    export_form_class = SelectableFieldsExportForm
    confirm_form_class = ConfirmImportForm
    import_template_name = "admin/audit/import.html"
    # The upload waits in the cache between preview and confirmation: any web process may
    # answer the confirmation (no state on the machine that showed the preview).
    tmp_storage_class = CacheStorage
    skip_admin_log = True  # the audit log has every row, with its reason
    to_encoding = "utf-8-sig"  # so that spreadsheet programs read the CSV as UTF-8
    preview_limit = 500  # rows listed per section of a preview; the counts cover them all
    # Applying costs what the services cost (a few ms a row): past this many changes, the
    # confirmation suggests `bulk_import`, which no web server timeout interrupts.
    large_import = 5000

    def has_import_permission(self, request) -> bool:
        return self.has_add_permission(request) or self.has_change_permission(request)

    def has_export_permission(self, request) -> bool:
        return self.has_view_or_change_permission(request)

    def get_import_resource_kwargs(self, request, **kwargs):
        return {"actor": request.user}

    def import_action(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        if isinstance(response, TemplateResponse):
            context = response.context_data
            result, confirm_form = context.get("result"), context.get("confirm_form")
            if confirm_form is not None:
                if result.changes:
                    confirm_form.initial["preview_digest"] = result.digest
                else:
                    context["confirm_form"] = None  # nothing to apply
            context.update(self._preview_context(request))
        return response

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        """Apply a confirmed preview: all rows in one transaction with the given reason, or
        nothing (a refused row, or an outcome other than the preview's, shows it again)."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        import_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import")
        confirm_form = self.create_confirm_form(request)
        confirm_form.is_valid()
        if set(confirm_form.errors) - {REASON_FIELD}:
            messages.error(request, "The import form was incomplete: upload the file again.")
            return HttpResponseRedirect(import_url)
        data = confirm_form.cleaned_data
        try:
            file_format = self.get_import_formats()[int(data["format"])]
            resource_class = self.choose_import_resource_class(confirm_form, request)
        except (IndexError, ValueError):
            messages.error(request, "The import form was incomplete: upload the file again.")
            return HttpResponseRedirect(import_url)
        storage = self.get_tmp_storage_class()(
            name=data["import_file_name"],
            encoding=None if file_format().is_binary() else self.from_encoding,
            read_mode=file_format().get_read_mode(),
        )
        content = storage.read()
        if content is None:
            messages.error(request, "The uploaded file is no longer kept: upload it again.")
            return HttpResponseRedirect(import_url)
        dataset = read_dataset(content if isinstance(content, bytes) else content.encode(), file_format)
        resource = resource_class(**self.get_import_resource_kwargs(request, form=confirm_form))
        if confirm_form.errors:  # no reason given: show the preview again, with the error
            result = run_import(resource, dataset, apply=False, file_name=data["original_file_name"])
            return self._render_preview(request, result, confirm_form)
        resource.reason = data[REASON_FIELD]
        result = run_import(
            resource,
            dataset,
            apply=True,
            expected_digest=data["preview_digest"],
            file_name=data["original_file_name"],
            request_id=getattr(request, "request_id", None),
        )
        if not result.applied:
            if result.stale:
                messages.warning(
                    request,
                    "The data changed since the preview: nothing was applied. Review the new preview.",
                )
            else:
                messages.error(request, "Nothing was imported: some rows are refused.")
            again = None
            if result.is_clean:  # the new preview may be confirmed in its turn
                again = self.get_confirm_form_class(request)(
                    initial={**confirm_form.cleaned_data, "preview_digest": result.digest}
                )
            return self._render_preview(request, result, again)
        storage.remove()
        audit_log = reverse("admin:audit_auditentry_changelist") + f"?request_id={result.request_id}"
        messages.success(
            request,
            format_html(
                'Imported {}: {}. <a href="{}" class="underline">See the changes in the audit log</a>.',
                data["original_file_name"],
                result.summary,
                audit_log,
            ),
        )
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))

    def _render_preview(self, request, result: ImportResult, confirm_form) -> TemplateResponse:
        """The preview page again, after a confirmation that could not be applied."""
        form = None
        if confirm_form is None:  # refused rows: offer to upload a corrected file
            form = self.get_import_form_class(request)(
                self.get_import_formats(), self.get_import_resource_classes(request)
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Import",
            "opts": self.model._meta,
            "result": result,
            "confirm_form": confirm_form,
            "form": form,
            "media": self.media + (form.media if form else forms.Media()),
            **self._preview_context(request),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)

    def _preview_context(self, request) -> dict[str, Any]:
        return {
            "preview_limit": self.preview_limit,
            "preview_slice": f":{self.preview_limit}",
            "preview_negative": -self.preview_limit,
            "large_import": self.large_import,
            "column_help": [
                (resource.get_display_name(), list(resource.column_help.items()))
                for resource in self.get_import_resource_classes(request)
            ],
        }
