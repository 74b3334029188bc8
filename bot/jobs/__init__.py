"""Time-driven work: the scheduler, the leader lock and every scheduled job body."""
