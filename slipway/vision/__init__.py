"""Image classification by transfer learning: data, augmentation, EfficientNet-Lite0 model, training, evaluation,
TorchScript export. Imports torch; nothing here downloads weights."""
