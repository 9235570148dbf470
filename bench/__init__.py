"""Benchmarks of pythonIOC against pythonSoftIOC, pcaspy, caproto and the C softIoc."""
