"""Local stand-ins for the form servers and a synthetic programme cohort to feed them."""
