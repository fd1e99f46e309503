"""What happens to a trained model: `promote`, `gate`, `monitor`, `card` and `reproduce`."""
