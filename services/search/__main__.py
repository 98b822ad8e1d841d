"""`python -m services.search`: run SearchService until SIGTERM/SIGINT."""

from services.platform.server import main
from services.search.service import SPEC

main(SPEC)
