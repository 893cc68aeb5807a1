"""The public's pages, reached only by a personal link: the call, the consent,
uploads and location, the statement to sign, the survey, the quick exit."""
