"""How the box measures itself: the randomised trial's allocation, the caller
survey; the statistics and charts (measures, report) are imported only to make a report."""
