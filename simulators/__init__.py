"""Local stand-ins for the form servers and a synthetic programme cohort to feed them: the
KoboToolbox and ODK Central simulators (`kobo`, `odk`), the cohort generator (`cohort`), and
what both simulators share (`faults`, `attached`). They are the demo's embedded source and the
test servers; they import only `schemas` and `connectors.serving` of ours."""
