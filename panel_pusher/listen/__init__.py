"""The listening side: the shared pysher hub and the NotifyListen component."""
