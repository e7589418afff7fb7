"""An OpenAI / Azure OpenAI compatible model simulator with fault injection, for local runs and tests."""

from tools.simulator.app import create_app
from tools.simulator.config import SimulatorConfig
from tools.simulator.service import Simulator

__all__ = ["Simulator", "SimulatorConfig", "create_app"]
