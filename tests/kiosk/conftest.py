"""Kiosk test helpers: the Fake peers live in kiosk_fakes.py beside this file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
