"""EventBridge Scheduler cron expressions, fired in their time zone by the local poller."""
import datetime as dt
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import poller  # noqa: E402

UTC = dt.timezone.utc


class CronTest(unittest.TestCase):
    def test_a_nightly_job_at_two_istanbul_time_runs_at_23_utc(self):
        after = dt.datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        when = poller.next_cron("cron(0 2 * * ? *)", "Europe/Istanbul", after)
        self.assertEqual(when.astimezone(UTC), dt.datetime(2026, 11, 25, 23, 0, tzinfo=UTC))

    def test_weekdays_steps_and_names(self):
        friday_evening = dt.datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # a Friday
        when = poller.next_cron("cron(0/15 9-17 ? * MON-FRI *)", "UTC", friday_evening)
        self.assertEqual(when, dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC), "Monday 09:00")
        after = dt.datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        self.assertEqual(poller.next_cron("cron(0/15 9-17 ? * MON-FRI *)", "UTC", after), after + dt.timedelta(minutes=15))
        self.assertEqual(poller.next_cron("cron(30 6 1 JAN,JUL ? *)", "UTC", after),
                         dt.datetime(2027, 1, 1, 6, 30, tzinfo=UTC))
        sunday = poller.next_cron("cron(0 0 ? * 1 *)", "UTC", after)
        self.assertEqual(sunday.weekday(), 6)

    def test_what_is_not_supported_says_so(self):
        for bad in ["cron(0 2 L * ? *)", "cron(0 2 * *)", "rate(5 minutes)", "cron(61 2 * * ? *)"]:
            with self.assertRaises(ValueError, msg=bad):
                poller.next_cron(bad, "UTC", dt.datetime(2026, 1, 1, tzinfo=UTC))


if __name__ == "__main__":
    unittest.main()
