from gptterm.cli import main

raise SystemExit(main())
