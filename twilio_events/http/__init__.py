"""The HTTP edge: reading a callback request, parsing its form, and writing the answer."""
