"""Bulk import and export (CSV, XLSX) of the domain, with a preview, one reason and all rows
or none. Shared by the admin and the `bulk_import` / `bulk_export` commands.

django-import-export reads and writes the files and drives the admin pages; its save path is
not used. A `ServiceResource` turns each row into a call to the same service a form or an
API write makes (`catalog.services`, `subscriptions.services`, `segments.services`), so each
row is checked, validated and recorded exactly like them, with source "import".

- Columns use the API's keys (feature and item keys, customer and subscription external
  ids), never database ids. A row names one object by its key columns; the other columns
  present in the file are set, columns absent from the file are left as they are.
- A preview is the import itself, rolled back: every row goes through its service (the
  same permission checks, validation and recording as any write) and is shown as created,
  changed (old → new), removed, unchanged or refused, with the reason; then nothing is
  kept. Applying runs the file again the same way, in one transaction, recorded with the
  reason given on confirmation and one request id; any refused row rolls back every row,
  and so does an outcome other than the confirmed preview's (someone changed the same
  objects meanwhile): the new preview is shown instead.
- An unchanged row writes nothing, so it needs no permission: an exported file edited in a
  few rows can be imported back by whoever may change those rows.
- Fast in bulk: a resource loads every object the file names in a few queries first
  (`prepare`); the rows' saves are then recorded in a bulk run (`audit.bulk.BulkRun`) and
  written together, with their history rows and audit entries (10,000 rows in seconds).

The modules:

- `cells`: a cell as text, and text read back as a boolean, number, date, JSON or list.
- `resources`: `ServiceResource`, the base of each app's `resources.py`, and the results of
  its rows (`ImportRow`, `ImportResult`). `ServiceResource.import_data_inner` is the loop
  over the rows; `_import_cells` runs one row.
- `files`: the formats (`FORMATS`), a file's bytes as a dataset (`read_dataset`), the kinds
  the commands accept (`KINDS`, `resource_for`), and `run_import`, which previews a dataset
  or applies it in one transaction; `import_file` and `export_file` are the cores of the
  `bulk_import` and `bulk_export` commands.
- `admin`: `AuditedImportExportMixin`, the import and export pages of an audited admin, and
  the confirmation form (`ConfirmImportForm`).
"""
