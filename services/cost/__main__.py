"""`python -m services.cost`: run CostService until SIGTERM/SIGINT."""

from services.cost.service import SPEC
from services.platform.server import main

main(SPEC)
