"""Typed settings read from params.yaml, the only place a tunable is written: one module per room (book,
simulate, features, risk, strategy, platform), one loader (load) and the view a stage reads them through
(view). A leaf: imports nothing of the project but its errors."""

from huishou.core.settings.book import SOURCE_PARAMS, ContractSettings, DataSettings
from huishou.core.settings.features import FEATURE_BUILD_PARAMS, FeatureSettings
from huishou.core.settings.load import SECTIONS, Settings, load_settings, merge, read_params, settings_from_dict
from huishou.core.settings.platform import ComputeSettings, PortfolioSettings, TrackingSettings, WorkbenchSettings
from huishou.core.settings.risk import EvaluateSettings, ScorecardSettings, ScoreSettings, TrainSettings
from huishou.core.settings.simulate import SimulateSettings
from huishou.core.settings.strategy import PROFILE_KEYS, StrategySettings, with_threads
from huishou.core.settings.view import ParamsView, SectionView

__all__ = [
    "ComputeSettings",
    "FEATURE_BUILD_PARAMS",
    "PROFILE_KEYS",
    "SECTIONS",
    "SOURCE_PARAMS",
    "ContractSettings",
    "DataSettings",
    "EvaluateSettings",
    "FeatureSettings",
    "ParamsView",
    "PortfolioSettings",
    "ScoreSettings",
    "ScorecardSettings",
    "SectionView",
    "Settings",
    "SimulateSettings",
    "StrategySettings",
    "TrackingSettings",
    "TrainSettings",
    "WorkbenchSettings",
    "load_settings",
    "merge",
    "read_params",
    "settings_from_dict",
    "with_threads",
]
