"""Parts of the Bias page's views too long for ui/views/bias.py; only that module imports them."""
