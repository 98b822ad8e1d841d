"""`python -m services.document`: run DocumentService until SIGTERM/SIGINT."""

from services.document.service import SPEC
from services.platform.server import main

main(SPEC)
