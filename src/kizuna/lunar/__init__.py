"""Lunar fields of kizuna."""
