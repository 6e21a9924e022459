# Bestätigungsnachrichten auf Deutsch (Sie-Form).

email-subject = Ihr Bestätigungscode für { $service }
email-intro = Ihr Bestätigungscode für { $service } lautet:
email-expiry =
    { $minutes ->
        [one] Er ist { $minutes } Minute lang gültig.
       *[other] Er ist { $minutes } Minuten lang gültig.
    }
email-enter = Geben Sie ihn dort ein, wo Sie ihn angefordert haben.
email-ignore = Wenn Sie keinen Code angefordert haben, ignorieren Sie diese Nachricht.
email-never-share = Geben Sie den Code niemals weiter: Niemand von { $service } wird Sie jemals danach fragen.

# Eine SMS: nur GSM-7-Zeichen (ä, ö, ü, ß gehören dazu), höchstens 160.
sms-body =
    { $minutes ->
        [one] Ihr Bestätigungscode für { $service }: { $code }. Er ist { $minutes } Minute gültig. Geben Sie ihn nicht weiter; wir fragen Sie nie danach.
       *[other] Ihr Bestätigungscode für { $service }: { $code }. Er ist { $minutes } Minuten gültig. Geben Sie ihn nicht weiter; wir fragen Sie nie danach.
    }
