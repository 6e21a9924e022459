# Messages de vérification en français (vouvoiement).

email-subject = Votre code de vérification { $service }
email-intro = Votre code de vérification { $service } est :
email-expiry =
    { $minutes ->
        [one] Il expire dans { $minutes } minute.
       *[other] Il expire dans { $minutes } minutes.
    }
email-enter = Saisissez-le là où vous l’avez demandé.
email-ignore = Si vous n’avez pas demandé de code, ignorez ce message.
email-never-share = Ne communiquez jamais ce code à personne : personne chez { $service } ne vous le demandera.

# Un seul SMS : caractères GSM-7 uniquement (é, è, à en font partie ; pas l’apostrophe typographique), 160 au plus.
sms-body =
    { $minutes ->
        [one] Votre code de vérification { $service } est : { $code }. Il expire dans { $minutes } minute. Ne le donnez à personne ; nous ne vous le demanderons jamais.
       *[other] Votre code de vérification { $service } est : { $code }. Il expire dans { $minutes } minutes. Ne le donnez à personne ; nous ne vous le demanderons jamais.
    }
