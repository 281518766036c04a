"""The reaper: deletes what an expired run left (see pflambda.aws.reaper)."""

from pflambda.aws.reaper import Reaper

handler = Reaper()
