"""Channel-importance criteria."""

from sigmab.importance.activation import (
    IMPORTANCES,
    ActivationImportance,
    MeanAbsActivation,
    RMSActivation,
    get_importance,
    top_channels,
)

__all__ = ["IMPORTANCES", "ActivationImportance", "MeanAbsActivation", "RMSActivation", "get_importance",
           "top_channels"]
