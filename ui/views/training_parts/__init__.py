"""Parts of the Training lab's views too long for ui/views/training.py (imported only by it)."""
