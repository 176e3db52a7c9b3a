"""An ODK Central simulator: an in-memory store and a Starlette app served by uvicorn.

It reproduces what an OData sync client meets on Central (v2026.x, see the research notes in
`/work/shared/reference/odk/NOTES.md`): session login and bearer tokens that expire, the project
form list, service document and a minimal `$metadata`, and the submissions feed with groups as
nested objects, repeats as navigation links (inlined by `$expand=*`, or read as
`Submissions.<repeat>` tables), typed numbers and GeoJSON points, `__id`/`__system`,
newest-first paging with `$top`, `$skip` and the opaque `$skiptoken` cursor, `$count`, the
limited `$filter` (metadata fields only, SQL null logic), `$orderby`, `$select`, soft deletes
hidden unless the filter names `__system/deletedAt`, edits that keep `__id` and bump `updatedAt`,
`edits` and the review state, and Central's problem JSON (`{"code": 404.1, "message": …}`);
and Entity Lists with what a phone downloads of them.

By concern: `forms` (form schemas, from XLSForms), `store` (projects, forms, submissions,
sessions and their changes), `filters` (the `$filter` grammar and its evaluation, shared with
the Entity Lists), `query` (the other query options and paging), `values` and `render` (typed
answers, rows, envelopes, `$metadata`), `problems` (Central's refusals), `app` (routes, auth,
serving), `seed` (a generated cohort loaded into a store), `entities*` (the Entity Lists:
store, REST API, OData, phone) and `submissions` (a phone's submission, whose entity update is
applied as Central does).
"""

from sammachip.simulators.odk.app import create_app, run_odk_forever, serve_odk
from sammachip.simulators.odk.entities import EntityStore, entity_store
from sammachip.simulators.odk.forms import FormDefinition, OdkField, xlsform_definition
from sammachip.simulators.odk.problems import ODataProblem
from sammachip.simulators.odk.seed import KOBO_TO_REVIEW, PUBLIC_LINK, seed_odk_from_cohort
from sammachip.simulators.odk.store import HostedForm, OdkStore
from sammachip.simulators.odk.submissions import apply_form_update

__all__ = [
    "KOBO_TO_REVIEW",
    "PUBLIC_LINK",
    "EntityStore",
    "FormDefinition",
    "HostedForm",
    "ODataProblem",
    "OdkField",
    "OdkStore",
    "apply_form_update",
    "create_app",
    "entity_store",
    "run_odk_forever",
    "seed_odk_from_cohort",
    "serve_odk",
    "xlsform_definition",
]
