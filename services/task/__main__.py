"""`python -m services.task`: run TaskService until SIGTERM/SIGINT."""

from services.platform.server import main
from services.task.service import SPEC

main(SPEC)
