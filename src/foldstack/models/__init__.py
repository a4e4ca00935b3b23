"""Models: timm backbones with our pooling and heads. Import from the defining module (factory, net, heads,
pooling, hub, pretrained)."""
