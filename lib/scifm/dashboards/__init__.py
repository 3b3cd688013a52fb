"""The dashboards as Panel components: the served app lays them out, notebooks embed them.

Each takes its data as arguments (models, a checkpoint or run folder, trajectories, a
catalog) and has a ``from_assets()`` for the shipped ones; ``LiveLoss`` is a training
callback that draws the loss while a model trains.
"""

from scifm.dashboards.galaxies import GalaxyExplorer
from scifm.dashboards.live import LiveLoss
from scifm.dashboards.numbers import TokenizationComparer
from scifm.dashboards.physics import RolloutViewer
from scifm.dashboards.rollouts import Rollout
from scifm.dashboards.style import STYLESHEET

__all__ = ["STYLESHEET", "GalaxyExplorer", "LiveLoss", "Rollout", "RolloutViewer",
           "TokenizationComparer"]  # fmt: skip
