"""The ODK Central simulator (see `store`) and its Entity Lists (see `entities`)."""

from simulators.odk.entities import EntityStore, entity_store
from simulators.odk.entities_phone import apply_form_update
from simulators.odk.store import (
    KOBO_TO_REVIEW,
    PUBLIC_LINK,
    OdkField,
    OdkStore,
    create_app,
    run_odk_forever,
    seed_odk_from_cohort,
    serve_odk,
    xlsform_definition,
)

__all__ = [
    "KOBO_TO_REVIEW",
    "PUBLIC_LINK",
    "EntityStore",
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
