"""The interval (box) domain: interval bound propagation with outward rounding."""

from domains.interval.element import Interval

__all__ = ["Interval"]
