"""One file a model family; each registers in :data:`autophagy.models.MODELS`."""
